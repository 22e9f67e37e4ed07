"""`python -m bot.cli …`: the same as `yanxiu …`."""

import sys

from bot.cli import main

sys.exit(main())
