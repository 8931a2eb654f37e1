"""What a run leaves behind: results.json, the HTML report, run comparison, trends and charts."""
