"""NVIDIA's spellings: every option of gen_images.py, generate.py (ADA), gen_video.py, style_mixing.py,
projector.py, train.py (ADA and SG3), dataset_tool.py (ADA and SG3) and calc_metrics.py parses on the matching
`stylegan` command and lands in the parameter that does the same job, with the same value.

The table below is the list of options of those scripts (/work/shared/docs/official-features.md, §1-2).
Each entry is parsed in both of click's spellings (``--flag value`` and ``--flag=value``) by the real
command objects (``make_context``: parsed, not run); a handful of real runs on tiny models check that the
parsed values also do what NVIDIA's do."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.cli import run

from stylegan.cli.main import cli, main

#: our command <- NVIDIA's script; the options every parse needs (our required ones).
COMMANDS = {
    "gen_images.py": ("generate", ["--outdir", "o"]),
    "generate.py (ADA)": ("generate", ["--outdir", "o"]),
    "gen_video.py": ("video", ["--output", "v.mp4"]),
    "style_mixing.py": ("mix", ["--rows", "1", "--cols", "2", "--outdir", "o"]),
    "projector.py": ("project", ["--target", "t.png", "--outdir", "o"]),
    "train.py (ADA)": ("train", ["--outdir", "o"]),
    "train.py (SG3)": ("train", ["--outdir", "o"]),
    "dataset_tool.py (ADA)": ("dataset", ["--source", "s", "--dest", "d.zip"]),
    "dataset_tool.py (SG3)": ("dataset", ["--source", "s", "--dest", "d.zip"]),
    "calc_metrics.py": ("metrics", []),
}

#: script -> (NVIDIA's option, a value NVIDIA's script accepts or None for a bare switch, our parameter,
#: the value it must get). Booleans are listed once; BOOLEAN_FORMS checks all their spellings.
FLAGS = {
    "gen_images.py": [
        ("--network", "net.pkl", "network", "net.pkl"),
        ("--seeds", "0,1,4-6", "seeds", "0,1,4-6"),
        ("--trunc", "0.7", "truncation_psi", 0.7),
        ("--class", "3", "class_idx", 3),
        ("--noise-mode", "random", "noise_mode", "random"),
        ("--translate", "0.2,0.1", "translate", "0.2,0.1"),
        ("--rotate", "15", "rotate", 15.0),
        ("--outdir", "out", "outdir", Path("out")),
    ],
    "generate.py (ADA)": [
        ("--network", "net.pkl", "network", "net.pkl"),
        ("--seeds", "0-9", "seeds", "0-9"),
        ("--trunc", "0.5", "truncation_psi", 0.5),
        ("--class", "1", "class_idx", 1),
        ("--noise-mode", "none", "noise_mode", "none"),
        ("--projected-w", "w.npz", "ws_files", (Path("w.npz"),)),
        ("--outdir", "out", "outdir", Path("out")),
    ],
    "gen_video.py": [
        ("--network", "net.pkl", "network", "net.pkl"),
        ("--seeds", "0-31", "seeds", "0-31"),
        ("--shuffle-seed", "7", "shuffle_seed", 7),
        ("--grid", "2x2", "grid_spec", "2x2"),
        ("--num-keyframes", "4", "num_keyframes", 4),
        ("--w-frames", "60", "frames_per_transition", 60),
        ("--trunc", "0.7", "truncation_psi", 0.7),
        ("--output", "lerp.mp4", "output", Path("lerp.mp4")),
    ],
    "style_mixing.py": [
        ("--network", "net.pkl", "network", "net.pkl"),
        ("--rows", "85,100,75", "rows", "85,100,75"),
        ("--cols", "55,821,1789", "cols", "55,821,1789"),
        ("--styles", "0-6", "styles", "0-6"),
        ("--trunc", "0.8", "truncation_psi", 0.8),
        ("--noise-mode", "const", "noise_mode", "const"),
        ("--outdir", "out", "outdir", Path("out")),
    ],
    "projector.py": [
        ("--network", "net.pkl", "network", "net.pkl"),
        ("--target", "me.png", "targets", (Path("me.png"),)),
        ("--num-steps", "500", "num_steps", 500),
        ("--seed", "303", "seed", 303),
        ("--save-video", "False", "save_video", False),
        ("--outdir", "out", "outdir", Path("out")),
    ],
    "train.py (ADA)": [
        ("--outdir", "runs", "outdir", Path("runs")),
        ("--gpus", "1", "gpus", 1),
        ("--snap", "10", "snap", 10),
        ("--metrics", "none", "metrics", "none"),
        ("--seed", "5", "seed", 5),
        ("-n", None, "dry_run", True),
        ("--dry-run", None, "dry_run", True),
        ("--data", "d.zip", "data", Path("d.zip")),
        ("--cond", "1", "cond", True),
        ("--subset", "100", "subset", 100),
        ("--mirror", "1", "mirror", True),
        ("--cfg", "paper256", "cfg", "paper256"),
        ("--gamma", "10", "gamma", 10.0),
        ("--kimg", "1000", "kimg", 1000.0),
        ("--batch", "64", "batch", 64),
        ("--aug", "fixed", "aug", "fixed"),
        ("--p", "0.3", "p", 0.3),
        ("--target", "0.7", "target", 0.7),
        ("--augpipe", "bgcfnc", "augpipe", "bgcfnc"),
        ("--resume", "ffhq256", "resume", "ffhq256"),
        ("--freezed", "10", "freezed", 10),
        ("--fp32", "true", "fp32", True),
        ("--nhwc", "1", "nhwc", True),
        ("--nobench", "1", "nobench", True),
        ("--allow-tf32", "1", "allow_tf32", True),
        ("--workers", "3", "workers", 3),
    ],
    "train.py (SG3)": [
        ("--outdir", "runs", "outdir", Path("runs")),
        ("--cfg", "stylegan3-t", "cfg", "stylegan3-t"),
        ("--data", "d.zip", "data", Path("d.zip")),
        ("--gpus", "8", "gpus", 8),
        ("--batch", "32", "batch", 32),
        ("--gamma", "8.2", "gamma", 8.2),
        ("--cond", "False", "cond", False),
        ("--mirror", "True", "mirror", True),
        ("--aug", "noaug", "aug", "noaug"),
        ("--resume", "net.pkl", "resume", "net.pkl"),
        ("--freezed", "13", "freezed", 13),
        ("--p", "0.2", "p", 0.2),
        ("--target", "0.6", "target", 0.6),
        ("--batch-gpu", "4", "batch_gpu", 4),
        ("--cbase", "16384", "cbase", 16384),
        ("--cmax", "256", "cmax", 256),
        ("--glr", "0.0025", "glr", 0.0025),
        ("--dlr", "0.002", "dlr", 0.002),
        ("--map-depth", "2", "map_depth", 2),
        ("--mbstd-group", "8", "mbstd_group", 8),
        ("--desc", "try1", "desc", "try1"),
        ("--metrics", "fid50k_full,kid50k_full", "metrics", "fid50k_full,kid50k_full"),
        ("--kimg", "5000", "kimg", 5000.0),
        ("--tick", "2", "tick", 2.0),
        ("--snap", "20", "snap", 20),
        ("--seed", "1", "seed", 1),
        ("--fp32", "0", "fp32", False),
        ("--nobench", "True", "nobench", True),
        ("--workers", "2", "workers", 2),
        ("-n", None, "dry_run", True),
    ],
    "dataset_tool.py (ADA)": [
        ("--source", "imgs", "source", Path("imgs")),
        ("--dest", "out.zip", "dest", Path("out.zip")),
        ("--max-images", "1000", "max_images", 1000),
        ("--resize-filter", "box", "resize_filter", "box"),
        ("--transform", "center-crop-wide", "transform", "center-crop-wide"),
        ("--width", "256", "width", 256),
        ("--height", "256", "height", 256),
    ],
    "dataset_tool.py (SG3)": [
        ("--source", "imgs.zip", "source", Path("imgs.zip")),
        ("--dest", "out", "dest", Path("out")),
        ("--max-images", "10", "max_images", 10),
        ("--transform", "center-crop", "transform", "center-crop"),
        ("--resolution", "256x256", "resolution", 256),
    ],
    "calc_metrics.py": [
        ("--network", "net.pkl", "network", "net.pkl"),
        ("--metrics", "fid50k_full,pr50k3_full", "metric_names", "fid50k_full,pr50k3_full"),
        ("--data", "d.zip", "data", "d.zip"),
        ("--mirror", "1", "mirror", True),
        ("--gpus", "1", "gpus", 1),
        ("--verbose", "false", "verbose", False),
    ],
}

#: NVIDIA's boolean options (``type=bool``), which take a value or none at all.
BOOLEANS = {"train": ["--cond", "--mirror", "--fp32", "--nhwc", "--nobench", "--allow-tf32"],
            "metrics": ["--mirror", "--verbose"], "project": ["--save-video"]}
BOOLEAN_FORMS = [([], True), (["=1"], True), (["=0"], False), (["=true"], True), (["=False"], False),
                 ([" ", "1"], True), ([" ", "0"], False), ([" ", "yes"], True), ([" ", "off"], False)]


def parse(command: str, args: list[str]) -> dict:
    cmd = cli.get_command(None, command)
    with cmd.make_context(command, list(args)) as ctx:
        return dict(ctx.params)


CASES = [(script, *entry) for script, entries in FLAGS.items() for entry in entries]


@pytest.mark.parametrize("script,flag,value,param,expected", CASES,
                         ids=[f"{c[0]} {c[1]}" for c in CASES])
@pytest.mark.parametrize("form", ["space", "equals"])
def test_every_nvidia_option_parses_into_the_same_setting(script, flag, value, param, expected, form):
    command, required = COMMANDS[script]
    base = [a for i, a in enumerate(required)                  # the option under test replaces a required one
            if not (a == flag or (i and required[i - 1] == flag))]
    given = [flag] if value is None else ([flag, value] if form == "space" or flag == "-n" else [f"{flag}={value}"])
    params = parse(command, base + given)
    assert params[param] == expected, (command, given, params[param])


@pytest.mark.parametrize("command,flag", [(c, f) for c, flags in BOOLEANS.items() for f in flags])
def test_boolean_options_take_a_value_or_none(command, flag):
    required = COMMANDS[{"train": "train.py (ADA)", "metrics": "calc_metrics.py", "project": "projector.py"}[command]][1]
    name = flag.lstrip("-").replace("-", "_")
    for suffix, expected in BOOLEAN_FORMS:
        args = [flag] if not suffix else ([flag + suffix[0]] if suffix[0] != " " else [flag, suffix[1]])
        assert parse(command, required + args + ["--seed", "4"])[name] is expected, args
    with pytest.raises(Exception, match="not a valid boolean"):
        parse(command, required + [f"{flag}=maybe"])


def test_the_table_lists_every_script_and_aliases_stay_out_of_help():
    assert set(FLAGS) == set(COMMANDS)
    for command, alias in [("video", "--num-keyframes"), ("project", "--num-steps")]:
        cmd = cli.get_command(None, command)
        ctx = cmd.make_context(command, list(COMMANDS[{"video": "gen_video.py", "project": "projector.py"}[command]][1]))
        assert alias not in cmd.get_help(ctx)


def test_gpus_outside_torchrun_prints_the_torchrun_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    code, err = run(capsys, "train", "--data", tmp_path / "d.zip", "--outdir", tmp_path / "runs", "--gpus", "4",
                    "--batch", "64", "--mirror=1", "-n")
    expected = (f"error: --gpus 4: run one process per GPU with torchrun: torchrun --nproc_per_node 4 -m "
                f"stylegan.cli.main train --data {tmp_path / 'd.zip'} --outdir {tmp_path / 'runs'} --batch 64 "
                f"--mirror=1 --dry-run")
    assert code == 1 and err.strip() == expected
    code, err = run(capsys, "metrics", "--metrics", "fid50k_full", "--gpus", "2")
    assert code == 1 and err.strip() == ("error: --gpus 2: run one process per GPU with torchrun: torchrun "
                                         "--nproc_per_node 2 -m stylegan.cli.main metrics --metrics fid50k_full")
    code, err = run(capsys, "metrics", "--metrics", "none")          # calc_metrics.py accepts none
    assert code == 0 and "nothing to compute" in err
    monkeypatch.setenv("WORLD_SIZE", "4")                 # one of torchrun's 4 processes: accepted
    code, err = run(capsys, "train", "--data", "d.zip", "--outdir", tmp_path / "runs", "--gpus", "4", "-n")
    assert code == 0, err


def test_ada_presets_and_switches_reach_the_training_options(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "d.zip", "--outdir", str(tmp_path), "--cfg", "paper256", "--gamma", "3",
              "--mirror", "1", "--cond=0", "--fp32", "--allow-tf32=1", "--nobench", "--resume", "ffhq256",
              "--subset", "50", "-n"])
    code, out = exit_info.value.code, json.loads(capsys.readouterr().out)
    opts = out["options"]
    assert code == 0
    assert (opts["cfg"], opts["batch"], opts["cbase"], opts["glr"], opts["dlr"], opts["ema_kimg"],
            opts["mbstd_group"], opts["map_depth"], opts["ema_rampup"]) == \
        ("stylegan2", 64, 16384, 0.0025, 0.0025, 20.0, 8, 8, None)
    assert opts["gamma"] == 3.0                           # given explicitly: the preset does not override it
    assert (opts["mirror"], opts["cond"], opts["fp32"], opts["allow_tf32"], opts["cudnn_benchmark"]) == \
        (True, False, True, True, False)
    assert opts["subset"] == 50
    assert out["resume"].endswith("transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl")
    code, err = run(capsys, "train", "--data", "d.zip", "--outdir", tmp_path, "--cfg", "auto", "-n")
    assert code == 1 and err.count("\n") == 1 and "--cfg auto (StyleGAN2-ADA) is not reproduced" in err


def test_nvidia_spellings_run_end_to_end(sg2_model, tmp_path, capsys):
    """generate with --trunc=0.7, video with --num-keyframes/--w-frames, project with --num-steps and
    --save-video=1, mix with --styles 0-6, dataset with --resolution 16x16: real runs, real files."""
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "0,2-3", "--trunc=0.7",
                    "--outdir", tmp_path / "g")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["seed0000.png", "seed0002.png", "seed0003.png"]
    code, err = run(capsys, "video", "--network", sg2_model, "--seeds", "0-3", "--num-keyframes=2", "--w-frames",
                    "2", "--grid=1x2", "--output", tmp_path / "v.gif")
    assert code == 0 and "(4 frames, 64x32, loop through 2 keyframe(s) per cell)" in err, err
    code, err = run(capsys, "mix", "--network", sg2_model, "--rows", "1", "--cols", "2", "--styles", "0-6",
                    "--outdir", tmp_path / "m")
    assert code == 0 and "ws 0-6" in err, err
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "t.png")
    code, err = run(capsys, "project", "--network", sg2_model, "--target", tmp_path / "t.png", "--num-steps", "2",
                    "--save-video=1", "--outdir", tmp_path / "p")
    assert code == 0 and "2 steps" in err, err
    assert (tmp_path / "p" / "proj.mp4").is_file()
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(src / f"{i}.png")
    code, err = run(capsys, "dataset", "--source", src, "--dest", tmp_path / "d.zip", "--resolution", "16x16")
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "d.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".png"))
        assert Image.open(z.open(name)).size == (16, 16)
    code, err = run(capsys, "dataset", "--source", src, "--dest", tmp_path / "e.zip", "--width", "16",
                    "--height", "32")                     # both flags: a non-square dataset (W x H)
    assert code == 0 and "(16x32, 3 channel(s))" in err, err
    with zipfile.ZipFile(tmp_path / "e.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".png"))
        assert Image.open(z.open(name)).size == (16, 32)
    code, err = run(capsys, "dataset", "--source", src, "--dest", tmp_path / "f.zip", "--resolution", "16",
                    "--width", "32")
    assert code == 1 and "--resolution 16x16 and --width/--height 32x32 disagree" in err, err
    code, err = run(capsys, "dataset", "--source", src, "--dest", tmp_path / "f.zip", "--resolution", "48x16")
    assert code == 1 and "training needs sides that are powers of two" in err, err


def test_subset_is_a_seeded_random_choice_in_name_order(tmp_path):
    from stylegan.data.dataset import ImageDataset
    for i in range(8):
        Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(tmp_path / f"{i}.png")
    picks = [ImageDataset(tmp_path, max_images=3, subset_seed=s)._names for s in (0, 0, 1)]
    expected = sorted(np.random.RandomState(0).permutation(8)[:3])
    assert picks[0] == picks[1] == [f"{i}.png" for i in expected] and picks[0] != picks[2]
    assert ImageDataset(tmp_path, max_images=3)._names == ["0.png", "1.png", "2.png"]
