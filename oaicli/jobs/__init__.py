"""Long-running API jobs: fine-tuning (both APIs, follow) and training-data checks."""
