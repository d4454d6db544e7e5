"""`python -m oaicli` behaves exactly like the `oaicli` script, exit codes included."""

from oaicli.cli.root import run

if __name__ == "__main__":
    run()
