from cli.main import drivecat

drivecat()
