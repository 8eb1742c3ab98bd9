"""The package every Kitteh service imports: configuration, database, storage, naming, images."""
