"""Each record made compared with the committed reference record of the same run: identical scores,
or which scores differ against the reference's seed-to-seed spread and what is known to differ
(the CPU's numerics, the GPU, packages, the commit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import environment, identity, results
from harness.errors import RecordError


def compare_with_reference(paths: list[Path], config) -> list[str]:
    """One line per record made: whether its scores equal those of the reference record of the same
    run in ``config.reference_dir`` (the committed results), and if not, which scores differ, each
    against the reference's seed-to-seed spread (:func:`harness.results.spread_changes`), and what
    is known to differ (:func:`harness.environment.differences`: the CPU's numerics or the
    GPU, packages), or that nothing known does, with the commits. Nothing when there is no reference
    folder or it is the results folder."""
    if not config.reference_dir or Path(config.reference_dir).resolve() == Path(config.results_dir).resolve():
        return []
    lines = []
    for path in paths:
        record = results.read_record(path)
        name = f"{record['method']}" + (
            f" seed {seed}" if (seed := identity.seed_of(record)) is not None else ""
        )
        reference = identity.record_path(record, config.reference_dir)
        slot = {key: record[key] for key in ("task", "backbone", "method", "hparams")}
        if not reference.exists():
            lines.append(f"[{name}] no reference record of this configuration in {config.reference_dir}/")
            continue
        why = results.conflict(reference, slot, record.get("evaluation", {}))
        if why:
            lines.append(f"[{name}] the reference {reference} was made differently ({why}): not compared")
            continue
        theirs_record = results.read_record(reference)  # valid: conflict() read it above
        if not results.score_changes(theirs_record, record):
            lines.append(f"[{name}] matches the reference {reference}: every score is identical")
            continue
        changes = results.spread_changes(theirs_record, record, _reference_seeds(reference))
        differs = environment.differences(theirs_record, record)
        known = f"what differs: {', '.join(differs)}" if differs else _nothing_known(theirs_record, record)
        lines.append(
            f"[{name}] differs from the reference {reference}: {'; '.join(changes)} (reference -> yours); "
            + known
        )
    return lines


def _reference_seeds(reference: Path) -> list[dict[str, Any]]:
    """The records of every seed of the reference's configuration beside it (itself included)."""
    stem = reference.stem.rsplit("-seed", 1)[0]
    found = []
    for path in sorted(reference.parent.glob(f"{stem}-seed*.json")):
        try:
            found.append(results.read_record(path))
        except RecordError:  # a malformed neighbour says nothing about the spread
            continue
    return found


def _nothing_known(reference: dict[str, Any], yours: dict[str, Any]) -> str:
    """The line's end when the packages and the numerics agree: the code is what is left to say."""
    key = environment.of_record(yours)["numerics"]
    theirs, ours = reference["provenance"], yours["provenance"]
    code = (
        f"the code differs (commit {str(theirs.get('commit'))[:7]} -> {str(ours.get('commit'))[:7]})"
        if theirs.get("commit") != ours.get("commit")
        else "the same commit"
    )
    if ours.get("dirty") or theirs.get("dirty"):
        code += ", with uncommitted changes"
    return f"nothing known differs (same packages, numerics {key}); {code}"
