"""`make bench`: every benchmark, each writing its figures to bench-results.json."""

from bench import duplicates, ideas_intake, insights, notifications, votes_pipeline


def main() -> None:
    duplicates.main()
    ideas_intake.main()
    votes_pipeline.main()
    insights.main()
    notifications.main()


if __name__ == "__main__":
    main()
