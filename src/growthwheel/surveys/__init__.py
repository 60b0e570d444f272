"""Surveys and NPS: questions, answers captured over the API and signed journey links, NPS with intervals."""
