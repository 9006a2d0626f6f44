"""Campaigns: funnels (rules/funnels.yaml), experiments (A/B tests) and audiences."""
