"""The latent-space explorer in a browser (``stylegan serve``): :func:`stylegan.web.app.create_app`.

Needs the ``web`` extra (FastAPI, uvicorn); importing this package alone does not import them."""
