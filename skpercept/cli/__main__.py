"""``python -m skpercept.cli``: the ``skpercept`` command."""

import sys

from skpercept.cli import main

sys.exit(main())
