package actors

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestAskAnswersInOrderOnceEach(t *testing.T) {
	env := fakeEnv(t, rbac{"alice list pods a-web": true}, topology())
	cs := env.Kube.Core.(*fake.Clientset)
	m := Of(env)
	list := InNamespace(alice, "a-web", List("pods"))
	create := InNamespace(alice, "a-web", Create("pods"))
	got := m.Ask(context.Background(), []Question{list, create, list, create, list})
	require.Len(t, got, 5)
	for i, want := range []bool{true, false, true, false, true} {
		assert.Equal(t, want, got[i].Allowed, "answer %d", i)
		assert.NoError(t, got[i].Err)
	}
	assert.True(t, m.May(context.Background(), alice, "a-web", List("pods")).Allowed, "May answers from the same cache")
	reviews := 0
	for _, a := range cs.Actions() {
		if a.GetResource().Resource == "subjectaccessreviews" {
			reviews++
		}
	}
	assert.Equal(t, 2, reviews, "two distinct questions, one review each")

	named := Question{Identity: alice, Resource: &authorizationv1.ResourceAttributes{Namespace: "a-web", Verb: "get", Resource: "secrets", Name: "x"}}
	assert.Equal(t, "get secrets x in a-web", named.String())
	assert.NotEqual(t, named.key(), InNamespace(alice, "a-web", Get("secrets")).key(), "a name makes another question")
}

func TestHTTPActorIsOnePerIdentity(t *testing.T) {
	env := fakeEnv(t, rbac{}, topology())
	m := Of(env)
	a, err := m.HTTP(alice)
	require.NoError(t, err)
	b, err := m.HTTP(alice)
	require.NoError(t, err)
	assert.Same(t, a, b)
	assert.Equal(t, "https://fake", a.Base)
	c, err := m.HTTP(ci)
	require.NoError(t, err)
	assert.NotSame(t, a, c)
}
