package grpckind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/prober-dev/prober/internal/config"
)

// reflectMethod is the server reflection call that finds a method's types.
const reflectMethod = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"

// decodeCall reads method: and request: (a unary call instead of the
// health check).
func decodeCall(b *config.StepBlock, s *Spec) {
	if m, ok := b.String("method", "a method (package.Service/Method)"); ok {
		svc, name, found := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		switch {
		case !found || svc == "" || name == "" || strings.Contains(name, "/"):
			b.Errorf("method", "method %q is not package.Service/Method", m)
		case b.Has("service"):
			b.Errorf("service", "service is the health check's; a call's arguments go in request")
		default:
			s.Method = svc + "/" + name
		}
	}
	if t, ok := b.Template("request", "a JSON request"); ok {
		switch {
		case !b.Has("method"):
			b.Errorf("request", "request needs a method")
		case t.IsLiteral() && !json.Valid([]byte(t.String())):
			b.Errorf("request", "request is not JSON")
		}
		s.Request = t
	}
}

// errPrepare marks a call that could not be made: the server offers no
// reflection, no such method, a request that does not fit its type.
type errPrepare struct{ msg string }

func (e *errPrepare) Error() string { return e.msg }

// reflectError is an error of the reflection call: its status is no
// answer of the method's.
type reflectError struct{ err error }

func (e *reflectError) Error() string { return e.err.Error() }

// call makes the unary call method with the JSON request, finding its
// types through the server's reflection, and returns the response as
// JSON. Errors are the calls' (a status or transport error) or errPrepare.
func call(ctx context.Context, cc *grpc.ClientConn, method, request string) ([]byte, error) {
	svc, name, _ := strings.Cut(method, "/")
	md, err := resolve(ctx, cc, svc, name)
	if err != nil {
		return nil, err
	}
	in, out := dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output())
	if request == "" {
		request = "{}"
	}
	if err := protojson.Unmarshal([]byte(request), in); err != nil {
		// protojson's messages hold a random no-break space, on purpose.
		return nil, &errPrepare{"request: " + strings.ReplaceAll(err.Error(), "\u00a0", " ")}
	}
	if err := cc.Invoke(ctx, "/"+method, in, out); err != nil {
		return nil, err
	}
	return marshal(out)
}

// marshal is m as compact JSON (protojson varies its spaces on purpose).
func marshal(m proto.Message) ([]byte, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, &errPrepare{"response: " + err.Error()}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, &errPrepare{"response: " + err.Error()}
	}
	return buf.Bytes(), nil
}

// resolve asks the server (reflection v1) for the file defining svc and
// those it imports, and finds method name in it.
func resolve(ctx context.Context, cc *grpc.ClientConn, svc, name string) (protoreflect.MethodDescriptor, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream
	stream, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, &reflectError{err}
	}
	var set descriptorpb.FileDescriptorSet
	have := map[string]bool{}
	req := &reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: svc}}
	// Servers send the imports with the file; ask for any they leave out.
	for req != nil {
		if err := stream.Send(req); err != nil {
			_, err = stream.Recv() // the stream's status says why
			return nil, &reflectError{err}
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, &reflectError{err}
		}
		if e := resp.GetErrorResponse(); e != nil {
			return nil, &errPrepare{fmt.Sprintf("server reflection: %s: %s", svc, e.GetErrorMessage())}
		}
		for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(raw, fd); err != nil {
				return nil, &errPrepare{"server reflection: " + err.Error()}
			}
			if !have[fd.GetName()] {
				have[fd.GetName()] = true
				set.File = append(set.File, fd)
			}
		}
		req = nil
		for _, fd := range set.File {
			for _, dep := range fd.GetDependency() {
				if !have[dep] && req == nil {
					req = &reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}}
				}
			}
		}
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, &errPrepare{"server reflection: " + err.Error()}
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(svc))
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if err != nil || !ok {
		return nil, &errPrepare{"server reflection: no service " + svc}
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	switch {
	case md == nil:
		return nil, &errPrepare{fmt.Sprintf("server reflection: service %s has no method %s", svc, name)}
	case md.IsStreamingClient() || md.IsStreamingServer():
		return nil, &errPrepare{fmt.Sprintf("method %s/%s streams: only unary calls are supported", svc, name)}
	}
	return md, nil
}

func isPrepare(err error) (string, bool) {
	var e *errPrepare
	if errors.As(err, &e) {
		return e.msg, true
	}
	return "", false
}
