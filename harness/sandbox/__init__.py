"""The sandbox wing: running model-written code where it cannot harm the machine, and grading it.

- :mod:`harness.sandbox.process`: run an untrusted Python program in its own namespaces with limits
  (``run_python``, ``run_many``, ``Limits``), and say plainly what that covers;
- :mod:`harness.sandbox.launcher`: the standard-library-only program that sets a sandbox up and then
  becomes the untrusted program (run by path as ``python -I -S``, never imported by the harness);
- :mod:`harness.sandbox.check`: grading across the sandbox wall: the tests stay in the harness and
  the sandboxed program only answers calls (``check_many``, ``CallTests``, ``CheckFunction``);
- :mod:`harness.sandbox.driver`: the small program that answers those calls inside the sandbox.

Tasks may import this wing and nothing else of the harness; it imports nothing of the harness.
"""
