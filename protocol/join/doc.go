// Package join is the invitation handshake: a device holding an invitation key
// proves it to a member of the folder, receives the folder's log, and hands
// back its signed Join op.
//
//	joiner                                   member (inviter or any member)
//	Request{folder, invite, cert, proof} ->
//	                                      <- Ops{...} (the log, in frames of at most MaxOpsPerFrame)
//	                                      <- Ops{..., Last}
//	JoinOp{op}                           ->
//	                                      <- Ack  (or an Error frame)
//
// The member checks the invitation is live, the device certificate is signed
// by the joiner's user and names the device on the other end of the stream,
// and the proof is made with the invitation's key, before it sends a single op.
// The invitation key (Key) is what the inviter gives the joiner: the folder,
// the invitation, its one-time private key, and addresses to reach a member.
package join
