"""Event capture: behaviour events over the API, UTM attribution and identity stitching."""
