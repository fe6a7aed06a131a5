"""Scripts that drive Baidu's official SDKs in a process of their own (another SDK version's path)."""
