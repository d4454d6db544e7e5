"""Commands for every operation of OpenAI's spec, built at run time from the compiled table (issue 11)."""
