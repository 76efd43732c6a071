"""Studies built on the keras_gans trainers: training arms compared over seeds."""
