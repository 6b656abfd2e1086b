"""harness: train one backbone with SFT and with DFT and compare how they generalize.

Importing the package pins the CPU's numeric paths first (:mod:`harness.numerics`): every
``python -m harness.*`` command imports it before torch, so the libraries see the pinned settings.
"""

from harness.numerics import pin_before_torch

pin_before_torch()
