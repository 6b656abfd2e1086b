"""The embedded-model builders: how the committed tiny models under ``harness/assets/`` are made.

- :mod:`harness.build.corpus`: the synthetic pretraining corpus (weighted sources);
- :mod:`harness.build.base`: the tiny Qwen2 text base, pretrained from nothing
  (``python -m harness.build.base``);
- :mod:`harness.build.vlm`: the tiny Qwen2.5-VL around it (``python -m harness.build.vlm``).

``nox -s build-base`` runs both. The pipeline never imports this wing; it only loads the folders.
"""
