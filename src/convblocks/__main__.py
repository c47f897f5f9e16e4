import sys

from convblocks.cli.main import main

sys.exit(main())
