"""One rank of a multi-process test run: ``python ddp_worker.py JSON`` with torchrun's variables set.

JSON is a list of [MASTER_PORT, argv] pairs; each argv runs through ``radsynth.cli.main`` (which
joins and leaves the process group) on its own port, so one interpreter start serves several
commands. Exits with the first non-zero exit code.
"""

from __future__ import annotations

import json
import os
import sys

import torch

if __name__ == "__main__":
    torch.set_num_threads(1)
    from radsynth.cli import main

    for port, argv in json.loads(sys.argv[1]):
        os.environ["MASTER_PORT"] = str(port)
        code = main(argv)
        if code:
            sys.exit(code)
