"""`oaicli fine-tunes`: create, follow and manage fine-tuning jobs (legacy /v1/fine-tunes and /v1/fine_tuning/jobs)."""

import click


@click.group("fine-tunes")
def fine_tunes():
    """Create, follow and manage fine-tuning jobs, and check training data.

    \b
    Example:
      oaicli fine-tunes create --training-file train.jsonl --model gpt-4o-mini --follow
    """
