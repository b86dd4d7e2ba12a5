"""The episode store: rosbag2/MCAP read/write, browser-playable videos, a SQLite index.

Public API (import from the modules; this package imports nothing so `rlhf --help` stays fast):

- `store.EpisodeStore(root)`: `add(traj) -> EpisodeRecord` (bag + video(s) + index row, all or nothing),
  `load(id) -> Trajectory`, `list(**filters)`, `get(id)`, `remove(id)`, `pair_video(a, b)`,
  `import_bags(paths, BagReadConfig) -> ImportReport`, `export_lerobot(out_dir, ids, **config)`.
- `bag_writer.write_episode_bag(traj, bag_dir, ...)` and the streaming `EpisodeBagWriter`.
- `bag_reader.read_episodes(bag_dir, BagReadConfig | **fields) -> list[Trajectory]`, `BagError`.
- `video.write_video`, `video.write_wrist_video`, `video.make_pair_video`, `video.probe_video`.
- `index.EpisodeIndex(path)`: add / get / list / update / remove.
- `lerobot_export.export_lerobot(trajectories, out_dir, LeRobotExportConfig)`.
"""
