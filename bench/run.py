"""`make bench`: every benchmark, each writing its figures to bench-results.json."""

from bench import duplicates, ideas_intake


def main() -> None:
    duplicates.main()
    ideas_intake.main()


if __name__ == "__main__":
    main()
