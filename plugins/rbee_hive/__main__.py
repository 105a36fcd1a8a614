from rbee_hive.cli import main

main()
