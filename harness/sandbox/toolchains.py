"""Run a program in another language (MultiPL-E's seven) under its own toolchain, in the sandbox.

Each language is one :class:`Toolchain` row: the file the program is written to, the build step
(compile, type-check) and the run step, as MultiPL-E's own evaluation runs them, and what each needs
from the machine, with the Debian or npm package that provides it. Build and run happen in one
fresh sandbox (:func:`harness.sandbox.process.run_program`: namespaces, no network, limits; the
compiler is as untrusted as the program, since templates and macros run at build time), driven by a
small shell script, so a program that does not build ends there with the note ``build failed``.

=========  =========================================  ======================================
language   build, then run                            needs (package)
=========  =========================================  ======================================
``cpp``    ``g++ -std=c++17``, then the binary        g++ (apt g++)
``java``   ``javac -encoding UTF8``, ``java -ea``     javac, java (apt default-jdk-headless),
                                                      javatuples (apt libjavatuples-java)
``js``     ``node``                                   node (apt nodejs)
``ts``     ``tsc --target esnext``, then ``node``     node (apt nodejs), tsc (npm typescript)
``php``    ``php``                                    php (apt php-cli)
``sh``     ``bash``                                   bash (apt bash)
``cs``     ``csc``/``mcs -d:DEBUG``, then ``mono``    mcs or csc, mono (apt mono-mcs mono-runtime)
=========  =========================================  ======================================

The JVM, V8 and Mono reserve far more address space than they use, so their rows raise the memory
limit and size the JVM's own reservations down (heap, code cache, class space); they also start
more threads, which count as processes. A toolchain found outside the usual system folders (a
``tsc`` installed with npm under a home folder) is opened to the program where the way to it is
closed.

>>> TOOLCHAINS["cpp"].title, TOOLCHAINS["cpp"].source
('C++', 'program.cpp')
>>> sorted(TOOLCHAINS)
['cpp', 'cs', 'java', 'js', 'php', 'sh', 'ts']
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness.sandbox.process import Execution, Limits, run_program

# The JVM's reservations sized to fit a 1 GiB address space; one compiler thread and the serial
# collector keep its thread count (processes, to the limit) small.
JVM_FLAGS = (
    "-Xmx256m -Xss2m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 "
    "-XX:ReservedCodeCacheSize=64m -XX:CompressedClassSpaceSize=64m -Xshare:auto"
)
JAVAC_FLAGS = " ".join(f"-J{flag}" for flag in JVM_FLAGS.split())
# Where Debian's libjavatuples-java puts the jar; JAVATUPLES_JAR names another.
JAVATUPLES = ("/usr/share/java/javatuples.jar", "/usr/multiple/javatuples-1.2.jar")
BUILD_FAILED = "build failed"  # the note a program that does not build ends with


@dataclass(frozen=True)
class Tool:
    """One thing a language needs: an executable on ``PATH`` (any of ``names``), or a file (``paths``,
    or the one the environment variable ``variable`` names), and how to install it."""

    key: str  # its placeholder in the build and run commands
    names: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    variable: str | None = None
    install: str = ""

    def find(self) -> str | None:
        if self.variable and os.environ.get(self.variable):
            path = Path(os.environ[self.variable])
            return str(path.resolve()) if path.is_file() else None
        for name in self.names:
            found = shutil.which(name)
            if found:
                return str(Path(found).resolve())
        return next((str(Path(p).resolve()) for p in self.paths if Path(p).is_file()), None)


@dataclass(frozen=True)
class Toolchain:
    language: str  # MultiPL-E's code for it
    title: str
    source: str  # the file the program is written to
    build: str  # shell command run before the program ("" for none); {tool} placeholders
    run: str  # the command that runs it; {main}: the entry class where the language has one
    tools: tuple[Tool, ...]
    memory_mb: int = Limits.memory_mb
    processes: int = Limits.processes

    def missing(self) -> list[Tool]:
        return [tool for tool in self.tools if found_tool(tool) is None]

    def require(self) -> dict[str, str]:
        """``{placeholder: path}`` of every tool; a ValueError in one line naming what is missing and
        the packages that provide it."""
        missing = self.missing()
        if missing:
            names = ", ".join(tool.key for tool in missing)
            packages = "; ".join(dict.fromkeys(tool.install for tool in missing))
            raise ValueError(f"{self.title} programs need {names}, which this machine lacks: {packages}")
        return {tool.key: found_tool(tool) for tool in self.tools}


@cache
def found_tool(tool: Tool) -> str | None:
    return tool.find()


GXX = Tool("gxx", names=("g++",), install="apt-get install g++")
NODE = Tool("node", names=("node", "nodejs"), install="apt-get install nodejs")
JAVAC = Tool("javac", names=("javac",), install="apt-get install default-jdk-headless")
JAVA = Tool("java", names=("java",), install="apt-get install default-jdk-headless")
TUPLES = Tool(
    "javatuples", paths=JAVATUPLES, variable="JAVATUPLES_JAR", install="apt-get install libjavatuples-java"
)
# tsc is a node script: the one in node_modules/typescript/bin, run by node itself.
TSC = Tool("tsc", names=("tsc",), install="npm install --global typescript")
PHP = Tool("php", names=("php",), install="apt-get install php-cli")
BASH = Tool("bash", names=("bash",), install="apt-get install bash")
CSC = Tool("csc", names=("csc", "mcs"), install="apt-get install mono-mcs mono-runtime")
MONO = Tool("mono", names=("mono",), install="apt-get install mono-mcs mono-runtime")

TOOLCHAINS: dict[str, Toolchain] = {
    chain.language: chain
    for chain in (
        Toolchain(
            "cpp", "C++", "program.cpp", "{gxx} -std=c++17 -o program program.cpp", "./program", (GXX,)
        ),
        Toolchain(
            "java",
            "Java",
            "Problem.java",
            f"{{javac}} {JAVAC_FLAGS} -encoding UTF8 -cp {{javatuples}} -d classes Problem.java",
            f"{{java}} {JVM_FLAGS} -ea -cp classes:{{javatuples}} {{main}}",
            (JAVAC, JAVA, TUPLES),
            memory_mb=2048,
            processes=64,
        ),
        Toolchain("js", "JavaScript", "program.js", "", "{node} program.js", (NODE,), memory_mb=4096),
        Toolchain(
            "ts",
            "TypeScript",
            "program.ts",
            "{node} {tsc} --target esnext program.ts",
            "{node} program.js",
            (NODE, TSC),
            memory_mb=4096,
        ),
        Toolchain("php", "PHP", "program.php", "", "{php} program.php", (PHP,)),
        Toolchain("sh", "Bash", "program.sh", "", "{bash} program.sh", (BASH,)),
        Toolchain(
            "cs",
            "C#",
            "program.cs",
            "{csc} -d:DEBUG -r:System.Numerics.dll -out:program.exe -main:{main} program.cs",
            "{mono} program.exe",
            (CSC, MONO),
            memory_mb=4096,
            processes=64,
        ),
    )
}


def missing_packages() -> dict[str, list[str]]:
    """What this machine lacks for every language, as the packages that provide it:
    ``{"apt": [Debian packages], "npm": [npm packages]}`` (what ``nox -s tests`` installs first).

    >>> sorted(missing_packages())
    ['apt', 'npm']
    """
    wanted: dict[str, list[str]] = {"apt": [], "npm": []}
    for chain in TOOLCHAINS.values():
        for tool in chain.missing():
            words = tool.install.split()
            registry = "apt" if words[0] == "apt-get" else "npm"
            for package in (w for w in words[2:] if not w.startswith("-")):
                if package not in wanted[registry]:
                    wanted[registry].append(package)
    return wanted


def script(chain: Toolchain, tools: dict[str, str], main: str) -> str:
    """The shell script that builds and runs the program in the sandbox."""
    values = tools | {"main": main}
    lines = ["set -u"]
    if chain.build:
        build = chain.build.format(**values)
        lines.append(
            f"if ! {build} > build.log 2>&1; then echo 'sandbox: {BUILD_FAILED}' >&2; "
            "tail -c 3000 build.log >&2; exit 1; fi"
        )
    lines.append(f"exec {chain.run.format(**values)}")
    return "\n".join(lines) + "\n"


def run_in_language(language: str, program: str, limits: Limits, main: str = "Problem") -> Execution:
    """Build and run ``program`` (one source file) under ``language``'s toolchain in a fresh sandbox.

    ``limits`` are the task's; the language's own floor on memory and processes is applied on top.
    A missing toolchain is a ValueError naming the package (before anything runs).

    >>> run_in_language("sh", "echo $((6 * 7))", Limits(timeout_s=10)).stdout
    '42\\n'
    """
    chain = TOOLCHAINS[language]
    tools = chain.require()
    limits = Limits(
        timeout_s=limits.timeout_s,
        cpu_s=limits.cpu_s,
        memory_mb=max(limits.memory_mb, chain.memory_mb),
        file_mb=limits.file_mb,
        processes=max(limits.processes, chain.processes),
        output_chars=limits.output_chars,
    )
    # An executable's package folder (tsc's node_modules/typescript); a file's own folder (a jar).
    reach = {
        str(Path(path).parent if tool.paths else Path(path).parent.parent)
        for tool, path in zip(chain.tools, tools.values())
    }
    return run_program(
        ["/bin/sh", "run.sh"],
        files={chain.source: program, "run.sh": script(chain, tools, main)},
        limits=limits,
        reach=reach,
    )
