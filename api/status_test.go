package api

import "testing"

// TestStatus_NoLeaderReason_SaysWhatTheNodeKnows: an unreachable join
// seed, a bootstrap that waits, a lost majority and an election each read
// differently; a known leader, or a status that explains nothing, gives "".
func TestStatus_NoLeaderReason_SaysWhatTheNodeKnows(t *testing.T) {
	voters := func(statuses ...string) []Member {
		var ms []Member
		for i, s := range statuses {
			ms = append(ms, Member{ID: "node" + string(rune('1'+i)), Status: s, Voter: true, Suffrage: SuffrageVoter})
		}
		return ms
	}
	for _, tc := range []struct {
		name string
		st   Status
		want string
	}{
		{"leader known", Status{NodeID: "node1", LeaderID: "node2", Members: voters(MemberAlive, MemberDead, MemberDead)}, ""},
		{"seeds unreachable", Status{NodeID: "a", UnreachedSeeds: []string{"127.0.0.1:9003", "127.0.0.1:9013"},
			Members: []Member{{ID: "a", Status: MemberAlive, Suffrage: SuffrageNone}}},
			"not joined: join seeds 127.0.0.1:9003, 127.0.0.1:9013 unreachable; start one of them or check --join"},
		{"bootstrap waits", Status{NodeID: "a", Bootstrap: "waiting for enough members (have 2, expect 3)"},
			"not in a cluster yet: waiting for enough members (have 2, expect 3)"},
		{"majority lost", Status{NodeID: "node1", Term: 4, Members: voters(MemberAlive, MemberDead, MemberUnknown)},
			"no leader: 2 of 3 voters unreachable (node2, node3); a majority (2) must be up"},
		{"majority lost of five", Status{NodeID: "node1", Members: append(voters(MemberAlive, MemberAlive, MemberDead, MemberDead, MemberLeft),
			Member{ID: "node9", Status: MemberDead, Suffrage: SuffrageNonvoter})},
			"no leader: 3 of 5 voters unreachable (node3, node4, node5); a majority (3) must be up"},
		{"election", Status{NodeID: "node1", Term: 7, Members: voters(MemberAlive, MemberAlive, MemberDead)},
			"no leader: an election is under way (term 7; gossip reaches 2 of 3 voters)"},
		{"nothing known", Status{NodeID: "n1"}, ""},
	} {
		if got := tc.st.NoLeaderReason(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
