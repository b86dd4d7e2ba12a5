"""The episode store: rosbag2/MCAP read/write, browser-playable videos, a SQLite index."""
