"""Every training objective, once: its name, how pages label it, where it comes from, the second
model it reads, whether it shards under FSDP2 and trains LoRA adapters, and the parameters it reads.

Standard library only, so the configuration, the records and the pages read it as the loss does.
Each parameter is a :class:`harness.config.TrainConfig` field (default, check, flag, help); the
formula of each objective is its function in :data:`harness.losses.WEIGHTS`. A new objective is a
row here, a function there and its parameters' fields (docs/objectives.md, "Adding an objective").

>>> row("psft").reference, row("psft").fsdp, row("psft").lora
('old policy', False, False)
>>> BASE, BASELINE, SUBJECT
('base', 'sft', 'dft')
>>> owners_of("prob_threshold")
('profit', 'gft')
"""

from __future__ import annotations

from dataclasses import dataclass

# The second model an objective's loss reads: none, the frozen starting model, or the model at the
# start of the current batch (PSFT's old policy).
START, OLD_POLICY = "frozen starting model", "old policy"
# What an objective trains on: prompt/completion rows, or prompt/chosen/rejected preference pairs
# (whose loss is a mean over pairs, not over tokens).
ROWS, PAIRS = "rows", "pairs"


@dataclass(frozen=True)
class ObjectiveRow:
    name: str  # --objective / --methods
    label: str  # as the pages write it
    source: str  # the paper, and what the implementation was checked against
    reference: str | None = None  # START, OLD_POLICY or None
    # A reference copy is a whole model on every rank, which sharding exists to avoid; PSFT's old
    # policy would be a second copy of the adapted model under LoRA (not supported yet).
    fsdp: bool = True
    lora: bool = True
    params: tuple[str, ...] = ()  # the TrainConfig fields it reads
    data: str = ROWS  # ROWS or PAIRS
    # Whether a token's weight reads its whole sequence (iw-SFT's sequence weight, DPO's pair
    # margin): the loss needs each token's sequence, and weighs a chunk only once all are scored.
    per_sequence: bool = False
    # The yardstick: every other objective is compared with it (the pages' "X − SFT"), a map needs it.
    baseline: bool = False
    # The objective the harness is about, the headline's "DFT − SFT" and each page's first difference.
    subject: bool = False


OBJECTIVE_TABLE = (
    ObjectiveRow("sft", "SFT", "cross-entropy", baseline=True),
    ObjectiveRow("dft", "DFT", "arXiv 2508.05629", params=("dft_min_weight", "dft_alpha"), subject=True),
    ObjectiveRow("q-family", "q-family", "arXiv 2510.00526; the authors' GeneralFamily-q", params=("q",)),
    ObjectiveRow("profit", "ProFit", "arXiv 2601.09195", params=("prob_threshold",)),
    ObjectiveRow("chord-phi", "CHORD-phi", "arXiv 2508.11408"),
    ObjectiveRow("gft", "GFT", "arXiv 2604.14258", params=("prob_threshold",)),
    ObjectiveRow(
        "eaft", "EAFT", "arXiv 2601.02151; LLaMA-Factory's merge", params=("eaft_top_k", "eaft_alpha")
    ),
    ObjectiveRow(
        "asft",
        "ASFT",
        "arXiv 2509.23753; LLaMA-Factory's merge",
        reference=START,
        fsdp=False,
        params=("asft_lambda",),
    ),
    ObjectiveRow(
        "psft",
        "PSFT",
        "arXiv 2508.17784",
        reference=OLD_POLICY,
        fsdp=False,
        lora=False,
        params=("psft_clip", "psft_minibatches"),
    ),
    ObjectiveRow(
        "iw-sft",
        "iw-SFT",
        "arXiv 2507.12856; the authors' code (emmyqin/iw_sft)",
        reference=START,
        fsdp=False,
        params=("iwsft_temperature", "iwsft_max_weight"),
        per_sequence=True,
    ),
    ObjectiveRow(
        "dpo",
        "DPO",
        "arXiv 2305.18290; TRL's DPOTrainer (sigmoid loss)",
        reference=START,
        fsdp=False,
        params=("dpo_beta",),
        data=PAIRS,
        per_sequence=True,
    ),
)
NAMES = tuple(r.name for r in OBJECTIVE_TABLE)
_BY_NAME = {r.name: r for r in OBJECTIVE_TABLE}
# The two roles every command and page reads by name: the baseline objective (the table's column) and
# the untouched backbone, evaluated and never trained (a method of the commands, not an objective).
BASELINE = next(r.name for r in OBJECTIVE_TABLE if r.baseline)
SUBJECT = next(r.name for r in OBJECTIVE_TABLE if r.subject)
BASE = "base"


def row(name: str) -> ObjectiveRow:
    """The table's row of objective ``name`` (a KeyError for a name that is not one)."""
    return _BY_NAME[name]


def owners_of(param: str) -> tuple[str, ...]:
    """The objectives that read ``param``, in the table's order."""
    return tuple(r.name for r in OBJECTIVE_TABLE if param in r.params)


# The baseline trained on the backbone's own graded answers (the offline setting, harness.selfgen) is
# rejection-sampling fine-tuning: the paper's Table 4 calls it RFT, never SFT.
OFFLINE_BASELINE_LABEL = "RFT"


def label(method: str, offline: bool = False) -> str:
    """How a page names ``method``: an objective's label, or the method itself (``base``); in the
    ``offline`` setting the baseline is RFT.

    >>> label("sft"), label("sft", offline=True), label("dft", offline=True)
    ('SFT', 'RFT', 'DFT')
    """
    if offline and method == BASELINE:
        return OFFLINE_BASELINE_LABEL
    return _BY_NAME[method].label if method in _BY_NAME else method
