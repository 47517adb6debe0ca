import sys

from .cli.compile import main

sys.exit(main())
