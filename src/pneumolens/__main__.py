"""``python -m pneumolens ...``: the same as the ``pneumolens`` command."""

import sys

from pneumolens.cli.main import main

sys.exit(main())
