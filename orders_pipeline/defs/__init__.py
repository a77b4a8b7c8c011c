"""The Dagster layer: assets, checks, resources, jobs, schedules and sensors over the sources, analytics and insights."""
