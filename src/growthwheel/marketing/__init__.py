"""Marketing: ad spend and touchpoints, attribution, budgets (issue 14)."""
