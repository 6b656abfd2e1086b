"""The data layer: from a task's examples or a file's rows to training tensors.

- :mod:`harness.data.rows`: reading and checking conversational prompt/completion rows, and the
  training rows of a run (a task's train split or a file);
- :mod:`harness.data.text`: the chat template, completion-only labels, packing;
- :mod:`harness.data.images`: images for vision-language backbones (``qwen-vl-utils`` and the
  backbone's processor), padded rather than packed;
- :mod:`harness.data.encode`: every row of a run to model inputs, text or images alike.

The modules import one way, rows and text first, then images, then encode.
"""
