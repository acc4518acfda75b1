"""Select the built-in model's training images from the npm package emoji-datasource-google 16.0.0
(Noto Emoji images, Apache License 2.0): face emoji and person portraits, with every skin tone.

    npm pack emoji-datasource-google@16.0.0 && tar xzf emoji-datasource-google-16.0.0.tgz
    python docs/builtin-model/select_emoji.py package faces_src      # -> 1,115 PNGs (64x64 RGBA)
    stylegan dataset --source faces_src --dest faces32.zip --resolution 32 --background white
"""

import json
import shutil
import sys
from pathlib import Path

PEOPLE = {"person", "person-role", "person-gesture", "person-fantasy"}


def main(package: str, dest: str) -> None:
    package, dest = Path(package), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for e in json.loads((package / "emoji.json").read_text()):
        wanted = ((e["category"] == "Smileys & Emotion" and e["subcategory"].startswith("face-"))
                  or (e["category"] == "People & Body" and e["subcategory"] in PEOPLE))
        if not wanted:
            continue
        images = [e["image"]] if e.get("has_img_google") else []
        images += [v["image"] for v in (e.get("skin_variations") or {}).values() if v.get("has_img_google")]
        for name in images:
            src = package / "img" / "google" / "64" / name
            if src.exists():
                shutil.copy(src, dest / name)
                count += 1
    print(f"{count} images -> {dest}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
