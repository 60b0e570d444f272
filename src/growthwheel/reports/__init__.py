"""Reports: periodic reviews (复盘) rendered as self-contained HTML."""
