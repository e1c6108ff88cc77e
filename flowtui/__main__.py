"""`python -m flowtui` runs the command line."""

from flowtui.cli import main

if __name__ == "__main__":
    main()
