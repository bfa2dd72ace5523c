from drivecat.cli.main import drivecat

drivecat()
