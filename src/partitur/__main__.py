from partitur.cli import main

main()
