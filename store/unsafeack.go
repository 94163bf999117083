package store

import "time"

// ackBeforeWrite is the fault of the deliberately broken build (build tag
// ksb_unsafe_ack, see unsafeack_on.go): Put returns at once, as if the blob
// were stored, and a goroutine writes it unsafeAckDelay later — a write-back
// cache. A holder built this way sends receipts for blobs that a SIGKILL
// loses, which `make chaos CHAOS_TAGS=ksb_unsafe_ack` must catch. Normal
// builds never call it (unsafeAck is the constant false).
func (s *Store) ackBeforeWrite(e Entry, blob []byte, meta []MetaWrite) (bool, error) {
	blob = append([]byte(nil), blob...)
	go func() {
		time.Sleep(unsafeAckDelay)
		if s.enter() != nil {
			return // closed meanwhile: the blob is lost, which is the point
		}
		defer s.leave()
		s.write(e, blob, meta)
	}()
	return true, nil
}
