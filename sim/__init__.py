"""sim: the PyBullet backend (ROS-free): Panda arm, tasks, scripted demonstrators, gold metrics."""
