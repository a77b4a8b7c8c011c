"""What merchants read: charts, summaries, reports of new alerts, and their webhook delivery."""
