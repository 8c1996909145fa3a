lowbit demo --json
