package contract

// MergeMetadata returns old with the keys of new: a key whose old and new
// values are both objects gets the two merged one level down (new wins,
// as a platform's block of an entity is updated), any other key takes the
// new value. The inputs are not modified. The database plugin merges what
// EnsureConnection brings this way, and bootstrap what a world sync brings,
// so that both agree on what an entity, room or world holds afterwards.
func MergeMetadata(old, new map[string]any) map[string]any {
	if len(new) == 0 {
		return old
	}
	out := make(map[string]any, len(old)+len(new))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range new {
		ov, okOld := old[k].(map[string]any)
		nv, okNew := v.(map[string]any)
		if okOld && okNew {
			m := make(map[string]any, len(ov)+len(nv))
			for kk, vv := range ov {
				m[kk] = vv
			}
			for kk, vv := range nv {
				m[kk] = vv
			}
			out[k] = m
			continue
		}
		out[k] = v
	}
	return out
}
