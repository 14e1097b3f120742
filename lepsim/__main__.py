from lepsim.cli import main

raise SystemExit(main())
