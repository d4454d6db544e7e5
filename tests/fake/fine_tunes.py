"""Fake fine-tuning: the legacy /v1/fine-tunes and the current /v1/fine_tuning/jobs."""


def install(server):
    pass
