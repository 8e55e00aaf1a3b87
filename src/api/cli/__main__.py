"""`python -m api.cli`: how tests and scripts start the command with the interpreter they run on."""

import sys

from api.cli import main

sys.exit(main())
