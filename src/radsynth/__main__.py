"""``python -m radsynth``: the same command as the ``radsynth`` script."""

import sys

from radsynth.cli import main

sys.exit(main())
