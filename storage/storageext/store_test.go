package storageext

import (
	"reflect"
	"testing"

	"github.com/spoortrace/spoor/storage/badgerstore"
)

// TestStandInOffersWhatTheStoreOffers: consumers see the store through the stand-in
// (Store), and find optional abilities (storage.TraceCounter, storage.SummaryReader, …)
// by type assertion, so an ability badgerstore gains but the stand-in does not forward
// silently disappears from the query API. Every exported method of *badgerstore.Store
// must have a method of the same signature on *Store, except those listed here.
func TestStandInOffersWhatTheStoreOffers(t *testing.T) {
	notForwarded := map[string]bool{
		"Close": true, // the stand-in's lifecycle is the extension's
		"DB":    true,
		// A benchmark's hook (storebench charges index flushes to the writes), not an
		// ability the query API looks for.
		"WaitIndex": true,
	}
	store, standIn := reflect.TypeFor[*badgerstore.Store](), reflect.TypeFor[*Store]()
	for i := range store.NumMethod() {
		m := store.Method(i)
		if notForwarded[m.Name] {
			continue
		}
		got, ok := standIn.MethodByName(m.Name)
		if !ok {
			t.Errorf("*badgerstore.Store has %s, the stand-in *storageext.Store does not forward it", m.Name)
			continue
		}
		// Compare signatures without the receiver.
		if a, b := m.Type, got.Type; a.NumIn() != b.NumIn() || a.NumOut() != b.NumOut() {
			t.Errorf("%s: store %s, stand-in %s", m.Name, a, b)
			continue
		} else {
			for j := 1; j < a.NumIn(); j++ {
				if a.In(j) != b.In(j) {
					t.Errorf("%s: argument %d is %s in the store, %s in the stand-in", m.Name, j, a.In(j), b.In(j))
				}
			}
			for j := range a.NumOut() {
				if a.Out(j) != b.Out(j) {
					t.Errorf("%s: result %d is %s in the store, %s in the stand-in", m.Name, j, a.Out(j), b.Out(j))
				}
			}
		}
	}
}
