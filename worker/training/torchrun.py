"""torchrun, bound to the life of the process that started it: `python -m worker.training.torchrun ARGS`
takes torchrun's own arguments (torch.distributed.run).

A rank is a grandchild of the worker that launched the job (worker → torchrun → ranks), each
in a session of its own, so no signal to the worker's process group reaches them. Each link
asks the kernel to kill it when its parent ends (`die_with_parent`): a SIGKILLed worker takes
torchrun with it, and torchrun its ranks, instead of leaving them training on.
"""

import ctypes
import os
import signal
import sys

# The process each link must not outlive, passed down in the environment.
LAUNCHER_PID = "TUNELOOP_TORCHRUN_LAUNCHER_PID"
AGENT_PID = "TUNELOOP_TORCHRUN_AGENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when `parent`, which started it, ends (Linux: prctl)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the request above took effect
        os._exit(1)


if __name__ == "__main__":
    die_with_parent(int(os.environ[LAUNCHER_PID]))
    os.environ[AGENT_PID] = str(os.getpid())
    from torch.distributed.run import main

    main()
