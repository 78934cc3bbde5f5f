from ecgaffect.cli import main

raise SystemExit(main())
